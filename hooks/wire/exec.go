package wire

// ExecNamespaces are the namespaces `kubectl trace exec --ns` may enter:
// the plugin validates --ns against them, and the helper maps each to its
// nsenter flag.
var ExecNamespaces = []string{"cgroup", "ipc", "mnt", "net", "pid", "uts"}
