// Command images builds the container images of the local test cluster as
// docker-archive tarballs, importable with `ctr -n k8s.io images import`
// (no registry, no Docker):
//
//	go run ./hack/images -out bin/images -tracer bin/tracer -tag ktrace.local/tracer:dev
//
// writes
//
//	pause.tar     ktrace.local/pause:v1     the pod sandbox process (hack/images/pause)
//	workload.tar  ktrace.local/workload:v1  the test target (hack/images/workload)
//	tracer.tar    the -tag reference        the tracer plus tcpdump, nsenter, ip, ss, tc
//
// Each image is one layer for linux and the host architecture, root-owned,
// with fixed timestamps and sorted entries: the same inputs give the same
// digest. tracer.tar is skipped when -tracer is empty. The tracer image
// holds the same programs as tracer-image/Dockerfile, taken from this host's
// Debian packages instead of a Debian base image.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	out := flag.String("out", "bin/images", "directory to write the tarballs to")
	tracer := flag.String("tracer", "", "static tracer binary for tracer.tar (empty: no tracer image)")
	tag := flag.String("tag", "ktrace.local/tracer:dev", "image reference of the tracer image")
	busybox := flag.String("busybox", "/bin/busybox", "static busybox for the workload image (Debian busybox-static)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: go run ./hack/images [-out DIR] [-tracer PATH -tag REF] [-busybox PATH]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	written, err := buildAll(*out, *tracer, *tag, *busybox)
	if err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		os.Exit(1)
	}
	for _, w := range written {
		fmt.Println(w)
	}
}
