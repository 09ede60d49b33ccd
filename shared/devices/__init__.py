"""Devices, their assignments to patients, attribution of readings and corrections."""
