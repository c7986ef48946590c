"""What feeds a meter: synthetic services and loads (:mod:`.service`), installations (:mod:`.installation`)
and their wiring and faults (:mod:`.wiring`), the analogue front end (:mod:`.frontend`) and
readers of recordings (:mod:`.recordings`). Sources yield samples or per-cycle blocks;
none of them holds or drives a :class:`~minimeter.meter.Meter`."""
