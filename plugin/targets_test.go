package plugin

import (
	"strings"
	"testing"
)

func TestParseTargetArg(t *testing.T) {
	tests := []struct{ in, name, wantErr string }{
		{in: "pod/web", name: "web"},
		{in: "pods/web", name: "web"},
		{in: "web", name: "web"},
		{in: "pod/", wantErr: "has no name"},
		{in: "cm/x", wantErr: "only pods can be traced"},
	}
	for _, tt := range tests {
		_, name, err := parseTargetArg(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseTargetArg(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || name != tt.name {
			t.Errorf("parseTargetArg(%q) = %q, %v; want %q", tt.in, name, err, tt.name)
		}
	}
}
