package hooks

import (
	"strings"
	"testing"
)

func TestTcpdumpParams(t *testing.T) {
	d, ok := Lookup("tcpdump")
	if !ok {
		t.Fatal("no tcpdump hook")
	}
	if d.Kind != KindTcpdump {
		t.Errorf("kind %q", d.Kind)
	}
	tests := []struct {
		name    string
		given   map[string]string
		wantErr string
	}{
		{name: "filter with every kind of syntax", given: map[string]string{
			"filter": "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0 and not port 22 and portrange 8000-8100 or ether host aa:bb:cc:dd:ee:ff"}},
		{name: "filter with '=' and quotes", given: map[string]string{"filter": `tcp[13]=2 and host "10.0.0.1"`}},
		{name: "filter that is an option", given: map[string]string{"filter": "-w /tmp/x"}, wantErr: "cannot start with '-'"},
		{name: "filter that is an option after blanks", given: map[string]string{"filter": "  --help"}, wantErr: "cannot start with '-'"},
		{name: "filter with NUL", given: map[string]string{"filter": "tcp\x00"}, wantErr: "NUL"},
		{name: "empty filter", given: map[string]string{"filter": ""}},
		{name: "interface any", given: map[string]string{"interface": "any"}},
		{name: "interface eth0", given: map[string]string{"interface": "eth0"}},
		{name: "interface with dots and dashes", given: map[string]string{"interface": "cali1a2b.3-x_y"}},
		{name: "interface of 15 bytes", given: map[string]string{"interface": strings.Repeat("a", 15)}},
		{name: "interface of 16 bytes", given: map[string]string{"interface": strings.Repeat("a", 16)}, wantErr: "at most 15 bytes"},
		{name: "interface empty", given: map[string]string{"interface": ""}, wantErr: "empty"},
		{name: "interface with slash", given: map[string]string{"interface": "../../x"}, wantErr: `cannot contain '/'`},
		{name: "interface with blank", given: map[string]string{"interface": "eth0 -w"}, wantErr: `cannot contain ' '`},
		{name: "interface with colon", given: map[string]string{"interface": "eth0:1"}, wantErr: `cannot contain ':'`},
		{name: "interface option", given: map[string]string{"interface": "-D"}, wantErr: "cannot start with '-'"},
		{name: "interface dot", given: map[string]string{"interface": ".."}, wantErr: "not an interface name"},
		{name: "snaplen 1", given: map[string]string{"snaplen": "1"}},
		{name: "snaplen max", given: map[string]string{"snaplen": "262144"}},
		{name: "snaplen 0", given: map[string]string{"snaplen": "0"}, wantErr: "from 1 to 262144"},
		{name: "snaplen too big", given: map[string]string{"snaplen": "262145"}, wantErr: "from 1 to 262144"},
		{name: "snaplen not a number", given: map[string]string{"snaplen": "96k"}, wantErr: "from 1 to 262144"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, err := d.ResolveArgs(tt.given)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.given {
				if args[k] != v {
					t.Errorf("%s = %q, want %q", k, args[k], v)
				}
			}
		})
	}
	args, err := d.ResolveArgs(nil)
	if err != nil || args["interface"] != "any" || args["snaplen"] != "262144" || args["filter"] != "" {
		t.Errorf("defaults = %v, %v", args, err)
	}
}
