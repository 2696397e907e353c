"""HTTP handlers of the embedded API server: path routing, REST verbs, watch streams, admin."""
