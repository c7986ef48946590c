"""What is done with a meter: simulation and its scoring, analysis of recordings,
calibration, the accuracy bench, and the installation tests and fault naming. Everything
here feeds meters through :mod:`minimeter.drive`."""
