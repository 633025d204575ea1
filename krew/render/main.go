// Command render writes the kubectl-trace krew manifest: krew/trace.yaml.tmpl
// filled in with the version and archive digests of goreleaser's dist/.
//
//	go run ./krew/render -dist dist -out dist/krew/trace.yaml
//
// The result is held to krew's rules before it is written; `make
// validate-krew` also checks every digest against its archive and installs
// the plugin the way krew does.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ktrace-dev/kubectl-trace/krew"
)

func main() {
	dist := flag.String("dist", "dist", "goreleaser's output directory")
	out := flag.String("out", "", "file to write; stdout when empty")
	flag.Parse()
	if err := run(*dist, *out); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(dist, out string) error {
	rel, err := krew.LoadDist(dist)
	if err != nil {
		return err
	}
	data, err := krew.Render(rel)
	if err != nil {
		return err
	}
	p, err := krew.Parse(data)
	if err != nil {
		return err
	}
	if err := errors.Join(krew.Validate(p), krew.CheckCoverage(p, krew.Targets)); err != nil {
		return fmt.Errorf("the rendered manifest breaks krew's rules:\n%w", err)
	}
	if out == "" {
		_, err := os.Stdout.Write(data)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s (%s, %d platforms)\n", out, p.Spec.Version, len(p.Spec.Platforms))
	return nil
}
