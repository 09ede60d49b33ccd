"""Operations that span the stores and the pipeline: assigning a device (and re-driving what
was parked for it), correcting a wrong attribution."""
