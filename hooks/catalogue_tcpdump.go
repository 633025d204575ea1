package hooks

// tcpdumpHooks run tcpdump in the target's network namespace (package tcpdump).
var tcpdumpHooks = []Descriptor{}
