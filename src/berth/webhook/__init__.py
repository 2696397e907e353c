"""`berth webhook`: a mutating admission webhook that routes new pods to Berth while a Berth
leader is healthy and leaves them to default-scheduler otherwise, so no pod waits for a Berth
that is down."""
