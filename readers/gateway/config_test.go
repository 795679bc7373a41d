package gateway_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/readers/gateway"
)

const validConfig = `
server: https://lintel.example.com/
token: lgw_secret
site: HQ
data_dir: /var/lib/lintel-gateway
metrics_addr: 127.0.0.1:9108
readers:
  - id: front
    port: /dev/serial/by-id/usb-FTDI-if00-port0
    protocol: osdp
    address: 1
    door: Front door
    card_format: wiegand26
  - id: side
    port: /dev/serial/by-id/usb-FTDI-if00-port0
    protocol: OSDP
    address: 2
    door: Side door
  - id: back
    port: /dev/ttyUSB1
    protocol: ascii
    door: Back door
    number: hex
    line: {ending: crlf, prefix: "ID:"}
    pulse: 5s
  - id: lobby
    port: /dev/ttyUSB2
    protocol: qr
    door: Lobby
`

func TestAValidConfigIsReadWithDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := gateway.ParseConfig([]byte(validConfig), "/etc/lintel")
	require.NoError(t, err)
	require.Equal(t, "https://lintel.example.com", cfg.Server)
	require.Equal(t, gateway.DefaultHeartbeat, cfg.Heartbeat)
	require.Equal(t, gateway.DefaultPoll, cfg.Poll)
	require.Equal(t, gateway.RateLimit{Denials: 5, Window: 10 * time.Second, Lockout: 30 * time.Second}, cfg.RateLimit)
	require.Len(t, cfg.Readers, 4)
	require.Equal(t, "WIEGAND26", cfg.Readers[0].CardFormat)
	require.Equal(t, "osdp", cfg.Readers[1].Protocol)
	require.Equal(t, "DECIMAL", cfg.Readers[1].CardFormat, "DECIMAL is the default card format")
	require.Equal(t, 9600, cfg.Readers[1].Baud)
	require.Equal(t, 3*time.Second, cfg.Readers[0].Pulse)
	require.Equal(t, 5*time.Second, cfg.Readers[2].Pulse)
	require.Equal(t, "crlf", cfg.Readers[2].Line.Ending)
}

func TestATokenFileIsReadRelativeToTheConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("lgw_from_file\n"), 0o600))
	conf := strings.Replace(validConfig, "token: lgw_secret", "token_file: token", 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "gateway.yaml"), []byte(conf), 0o600))
	cfg, err := gateway.LoadConfig(filepath.Join(dir, "gateway.yaml"))
	require.NoError(t, err)
	require.Equal(t, "lgw_from_file", cfg.Token)
}

func TestConfigErrorsNameTheField(t *testing.T) {
	t.Parallel()
	reader := func(lines ...string) string {
		return "server: http://localhost:8080\ntoken: lgw_x\ndata_dir: /tmp/gw\nreaders:\n  - " + strings.Join(lines, "\n    ") + "\n"
	}
	ascii := []string{"id: r1", "port: /dev/ttyUSB0", "protocol: ascii", "door: Front"}
	with := func(base []string, extra ...string) []string { return append(append([]string{}, base...), extra...) }
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"an empty file is refused", "", []string{"the configuration is empty"}},
		{"a missing server is reported", strings.Replace(reader(ascii...), "server: http://localhost:8080\n", "", 1), []string{"server: is required"}},
		{"a server that is not a URL is reported", strings.Replace(reader(ascii...), "http://localhost:8080", "localhost", 1), []string{`server: "localhost" is not an http:// or https:// URL`}},
		{"a missing token is reported", strings.Replace(reader(ascii...), "token: lgw_x\n", "", 1), []string{"token: is required"}},
		{"an operator token is not a gateway token", strings.Replace(reader(ascii...), "lgw_x", "eyJhbGciOi", 1), []string{"token: is not a gateway token"}},
		{"token and token_file together are refused", strings.Replace(reader(ascii...), "token: lgw_x\n", "token: lgw_x\ntoken_file: /t\n", 1), []string{"token: give token or token_file, not both"}},
		{"a missing token file is reported", strings.Replace(reader(ascii...), "token: lgw_x\n", "token_file: /nonexistent/token\n", 1), []string{"token_file: open /nonexistent/token"}},
		{"a missing data_dir is reported", strings.Replace(reader(ascii...), "data_dir: /tmp/gw\n", "", 1), []string{"data_dir: is required"}},
		{"a bad metrics address is reported", "metrics_addr: 9108\n" + reader(ascii...), []string{`metrics_addr: "9108" is not host:port`}},
		{"a negative heartbeat is reported", "heartbeat: -1s\n" + reader(ascii...), []string{"heartbeat: -1s is negative"}},
		{"a duration without a unit is refused", "poll: 30\n" + reader(ascii...), []string{"poll (line 1): 30 is not a duration (write it with a unit"}},
		{"an unknown key is refused", "pol: 30s\n" + reader(ascii...), []string{"pol (line 1): unknown key"}},
		{"a value of the wrong type names its field", reader(with(ascii, "baud: fast")...), []string{"readers[0].baud (line 9): cannot unmarshal !!str `fast` into int"}},
		{"a negative denial count is reported", "rate_limit: {denials: -1}\n" + reader(ascii...), []string{"rate_limit.denials: -1 is negative"}},
		{"an OSDP poll interval out of range is reported", "osdp: {poll_interval: 1s}\n" + reader(ascii...), []string{"osdp.poll_interval: 1s is outside 50ms–100ms"}},
		{"no readers is refused", "server: http://x\ntoken: lgw_x\ndata_dir: /d\n", []string{"readers: at least one reader is required"}},
		{"a reader without an ID is reported", reader("port: /dev/ttyUSB0", "protocol: ascii", "door: Front"), []string{"readers[0].id: is required"}},
		{"a reader without a port is reported", reader("id: r1", "protocol: ascii", "door: Front"), []string{"readers[0] (r1).port: is required"}},
		{"an unknown protocol is reported", reader("id: r1", "port: /dev/ttyUSB0", "protocol: wiegand", "door: Front"), []string{`readers[0] (r1).protocol: "wiegand" is not osdp, em4100, ascii or qr`}},
		{"a reader without a door is reported", reader("id: r1", "port: /dev/ttyUSB0", "protocol: ascii"), []string{"readers[0] (r1).door: is required"}},
		{"an unknown card format is reported", reader(with(ascii, "card_format: octal")...), []string{`readers[0] (r1).card_format: "OCTAL" is not one of`}},
		{"an unknown number notation is reported", reader(with(ascii, "number: roman")...), []string{`readers[0] (r1).number: "roman" is not decimal or hex`}},
		{"an unknown line ending is reported", reader(with(ascii, "line: {ending: nl}")...), []string{`readers[0] (r1).line.ending: "nl" is not any, cr, lf or crlf`}},
		{"an OSDP address out of range is reported", reader("id: r1", "port: /dev/ttyUSB0", "protocol: osdp", "door: Front", "address: 127"), []string{"readers[0] (r1).address: 127 is outside 0–126"}},
		{"an address on a non-OSDP reader is reported", reader(with(ascii, "address: 3")...), []string{"readers[0] (r1).address: only OSDP readers have an address"}},
		{"a number notation on an OSDP reader is reported", reader("id: r1", "port: /dev/ttyUSB0", "protocol: osdp", "door: Front", "number: hex"), []string{"readers[0] (r1).number: only ascii readers"}},
		{"a pulse too long for a reader is reported", reader(with(ascii, "pulse: 2h")...), []string{"readers[0] (r1).pulse: 2h0m0s is longer than a reader can time"}},
		{"two readers with one ID are reported", reader(ascii...) + "  - id: r1\n    port: /dev/ttyUSB1\n    protocol: em4100\n    door: Back\n",
			[]string{`readers[1] (r1).id: "r1" is already the ID of readers[0]`}},
		{"two non-OSDP readers on one port are reported", reader(ascii...) + "  - id: r2\n    port: /dev/ttyUSB0\n    protocol: em4100\n    door: Back\n",
			[]string{"readers[1] (r2).port: /dev/ttyUSB0 is also the port of readers[0]; only OSDP readers can share a port"}},
		{"two OSDP readers at one address on one port are reported",
			reader("id: r1", "port: /dev/ttyUSB0", "protocol: osdp", "door: Front", "address: 4") + "  - id: r2\n    port: /dev/ttyUSB0\n    protocol: osdp\n    door: Back\n    address: 4\n",
			[]string{`readers[1] (r2).address: 4 is already the address of reader "r1" on /dev/ttyUSB0`}},
		{"OSDP readers on one port at different speeds are reported",
			reader("id: r1", "port: /dev/ttyUSB0", "protocol: osdp", "door: Front", "address: 1") + "  - id: r2\n    port: /dev/ttyUSB0\n    protocol: osdp\n    door: Back\n    address: 2\n    baud: 115200\n",
			[]string{"readers[1] (r2).baud: 115200 differs from the 9600 of readers[0] on the same port"}},
		{"every problem is reported at once", reader("protocol: nfc"), []string{"readers[0].id: is required", "readers[0].port: is required",
			`readers[0].protocol: "nfc" is not`, "readers[0].door: is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := gateway.ParseConfig([]byte(tt.yaml), t.TempDir())
			require.Error(t, err)
			for _, want := range tt.want {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestLoadConfigNamesTheFile(t *testing.T) {
	t.Parallel()
	_, err := gateway.LoadConfig("/nonexistent/gateway.yaml")
	require.ErrorContains(t, err, "/nonexistent/gateway.yaml")
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(path, []byte("server: http://x\n"), 0o600))
	_, err = gateway.LoadConfig(path)
	require.ErrorContains(t, err, path+": ")
	require.ErrorContains(t, err, "token: is required")
}
