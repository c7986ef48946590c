"""The running meter: its clock and runner (:mod:`.runner`), the snapshot stream every sink
consumes (:mod:`.stream`), the SQLite store (:mod:`.store`) and the sinks people connect
to — the web panel (:mod:`.web`), Modbus/SunSpec (:mod:`.modbus`), MQTT for Home
Assistant (:mod:`.mqtt`) and Prometheus metrics (:mod:`.metrics`)."""
