"""Running CacheGrid as a cluster: what sits beside the nodes (nginx in
front of them). The nodes themselves know nothing of each other; the
client's ring (cachegrid.client.ring) places keys."""
