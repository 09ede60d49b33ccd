"""Partner apps and gateways: readings sent through the partner metrics API (``/api/partner/v1``)."""
