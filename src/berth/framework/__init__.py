"""The scheduling framework: extension points, statuses, a profile's runtime and the algorithm."""
