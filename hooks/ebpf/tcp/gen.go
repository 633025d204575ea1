// Package tcp is the eBPF hook tcp: the target's TCP connections, from
// inet_sock_set_state (connect, close) and the sys_exit of accept and
// accept4. Its program is tcp.c, compiled by bpf2go into the committed
// bpf_*_bpfel.{go,o} (make generate); tcp.go says how the runtime (package
// ebpf) loads it and reads it.
package tcp

//go:generate go tool bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror -I../include" -tags linux -target amd64,arm64 -type tcp_event bpf tcp.c
