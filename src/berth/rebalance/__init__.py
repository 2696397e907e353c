"""`berth rebalance`: evict pods from nodes the live metrics call hot, but only pods the
scheduler's own profile places elsewhere (berth.rebalance.planner), through the Eviction API
(berth.kube.eviction), once or in a loop with leader election (berth.rebalance.runner)."""
