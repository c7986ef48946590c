"""Fleets (SPEC §14): many meters, simulated on Dask (:mod:`minimeter.fleet.run`), reported
(:mod:`minimeter.fleet.report`), archives analysed file by file (:mod:`minimeter.fleet.archive`)
and many live meters in one process (:mod:`minimeter.fleet.serve`)."""
