package plugin

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// Set with -ldflags "-X github.com/ktrace-dev/kubectl-trace/plugin.version=v1.2.3
// -X github.com/ktrace-dev/kubectl-trace/plugin.defaultImage=…". The image tag
// follows the plugin version so that plugin and helper speak the same protocol.
var (
	version      = "dev"
	defaultImage = "ghcr.io/ktrace-dev/kubectl-trace-tracer:dev"
)

// Version is the plugin's release version.
func Version() string { return version }

// DefaultImage is the tracer image used unless --image says otherwise.
func DefaultImage() string { return defaultImage }

// NewCmdVersion prints the plugin's version and its default tracer image.
func NewCmdVersion(streams genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the plugin version and the default tracer image",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(streams.Out, "kubectl-trace %s\ntracer image: %s\ngo: %s %s/%s\n",
				version, defaultImage, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
