package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/lineproto"
	"github.com/lintel/lintel/readers/osdp"
)

// Protocols a reader can speak, as written in the configuration.
const (
	ProtocolOSDP   = "osdp"
	ProtocolEM4100 = "em4100"
	ProtocolASCII  = "ascii"
	ProtocolQR     = "qr"
)

// Defaults for a zero Config field.
const (
	DefaultHeartbeat     = 10 * time.Second
	DefaultPoll          = 30 * time.Second
	DefaultPulse         = 3 * time.Second
	DefaultDenials       = 5
	DefaultDenialWindow  = 10 * time.Second
	DefaultLockout       = 30 * time.Second
	DefaultSnapshotEvery = time.Second
)

// Config is a gateway's configuration, as read from its YAML file by
// LoadConfig. A Config built in Go is checked and completed with defaults
// by Check, which New calls.
type Config struct {
	// Server is the Lintel server's base URL, e.g. https://lintel.example.com
	// (a trailing /graphql is accepted).
	Server string `yaml:"server"`
	// Token is the gateway's bearer token (lgw_…) from createGateway;
	// TokenFile names a file holding it instead, relative to the
	// configuration file.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// Site names the site in logs; the server knows it from the token.
	Site string `yaml:"site"`
	// DataDir holds the access-list snapshot and the event queue; it must
	// survive restarts.
	DataDir string `yaml:"data_dir"`
	// MetricsAddr is where Prometheus metrics are served at /metrics, e.g.
	// 127.0.0.1:9108; empty serves none.
	MetricsAddr string `yaml:"metrics_addr"`
	// Heartbeat is how often reader states go to the server.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// Poll is how often the access list is pulled when no change is
	// pushed: the fallback for a lost subscription.
	Poll time.Duration `yaml:"poll"`
	// RateLimit locks a reader out after repeated denials.
	RateLimit RateLimit `yaml:"rate_limit"`
	// OSDP tunes the OSDP buses; zero values take the osdp package's
	// defaults.
	OSDP OSDPTiming `yaml:"osdp"`
	// Readers are the door readers this gateway drives.
	Readers []Reader `yaml:"readers"`

	// SnapshotEvery is the shortest time between two snapshot writes:
	// changes arriving faster are written together. Not in the YAML file.
	SnapshotEvery time.Duration `yaml:"-"`

	checked bool
}

// RateLimit configures the lockout of a reader after repeated denials.
type RateLimit struct {
	// Denials within Window lock the reader for Lockout.
	Denials int           `yaml:"denials"`
	Window  time.Duration `yaml:"window"`
	Lockout time.Duration `yaml:"lockout"`
}

// OSDPTiming tunes every OSDP bus of the gateway; see osdp.Config.
type OSDPTiming struct {
	// PollInterval is how often each reader is polled, 50–100 ms
	// (default 75 ms).
	PollInterval time.Duration `yaml:"poll_interval"`
	// ReplyTimeout is how long a reader may take to answer (default
	// 200 ms, what OSDP allows).
	ReplyTimeout time.Duration `yaml:"reply_timeout"`
	// OfflineAfter is the silence after which a reader is reported
	// offline (default 8 s).
	OfflineAfter time.Duration `yaml:"offline_after"`
	// OfflineRetry is how often an offline reader is tried (default 1 s).
	OfflineRetry time.Duration `yaml:"offline_retry"`
}

// Reader is one door reader.
type Reader struct {
	// ID names the reader in events and heartbeats; unique per gateway.
	ID string `yaml:"id"`
	// Port is the serial device, preferably /dev/serial/by-id/…. Several
	// OSDP readers may share one port (RS-485 multidrop).
	Port string `yaml:"port"`
	// Baud is the line speed; 0 means 9600.
	Baud int `yaml:"baud"`
	// Protocol is osdp, em4100, ascii or qr.
	Protocol string `yaml:"protocol"`
	// Address is an OSDP reader's address on its bus, 0–126.
	Address int `yaml:"address"`
	// Door is the door the reader opens.
	Door string `yaml:"door"`
	// CardFormat is the card-ID format cards are stored in (DECIMAL, HEX,
	// HEX_REVERSED, WIEGAND26, WIEGAND34, WIEGAND37); default DECIMAL.
	CardFormat string `yaml:"card_format"`
	// Number is how an ascii reader writes card numbers: decimal
	// (default) or hex.
	Number string `yaml:"number"`
	// Line is how an ascii reader or qr scanner ends and wraps its lines.
	Line Line `yaml:"line"`
	// Pulse is how long a grant opens the door; default 3 s.
	Pulse time.Duration `yaml:"pulse"`
}

// Line is the framing of a line-based reader's output.
type Line struct {
	// Ending is any (default), cr, lf or crlf.
	Ending string `yaml:"ending"`
	// Prefix and Suffix are stripped from lines that carry them.
	Prefix string `yaml:"prefix"`
	Suffix string `yaml:"suffix"`
}

// LoadConfig reads and checks a YAML configuration file. Unknown keys are
// errors, so a misspelt option is not silently ignored.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	cfg, err := ParseConfig(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig reads a YAML configuration and checks it; a relative
// token_file is taken relative to dir.
func ParseConfig(data []byte, dir string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if len(root.Content) == 0 {
		return nil, errors.New("the configuration is empty")
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, typeErrors(te, &root)
		}
		return nil, err
	}
	if cfg.TokenFile != "" && !filepath.IsAbs(cfg.TokenFile) {
		cfg.TokenFile = filepath.Join(dir, cfg.TokenFile)
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// yamlLine matches the line number yaml puts in front of a type error.
var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// typeErrors rewrites yaml's "line 7: cannot unmarshal …" errors to name
// the field, e.g. "readers[1].pulse (line 7): 3 is not a duration".
func typeErrors(te *yaml.TypeError, root *yaml.Node) error {
	// The keys on each line: a line with one key names it, a flow
	// mapping ({a: 1, b: 2}) its parent, a bare sequence item its index.
	keys := map[int][]string{}
	items := map[int]string{}
	parent := map[string]string{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				keys[k.Line] = append(keys[k.Line], p)
				parent[p] = path
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				items[c.Line] = p
				walk(c, p)
			}
		}
	}
	walk(root, "")
	paths := func(line int) string {
		ks := keys[line]
		switch {
		case len(ks) == 1:
			return ks[0]
		case len(ks) > 1:
			return parent[ks[len(ks)-1]]
		}
		return items[line]
	}
	var errs []error
	for _, msg := range te.Errors {
		m := yamlLine.FindStringSubmatch(msg)
		if m == nil {
			errs = append(errs, errors.New(msg))
			continue
		}
		line, _ := strconv.Atoi(m[1])
		what := m[2]
		if v, ok := strings.CutPrefix(what, "cannot unmarshal "); ok && strings.HasSuffix(what, " into time.Duration") {
			v = strings.TrimSuffix(v, " into time.Duration")
			if i := strings.IndexByte(v, ' '); i >= 0 {
				v = strings.Trim(v[i+1:], "`")
			}
			what = fmt.Sprintf("%s is not a duration (write it with a unit: 10s, 500ms, 2m)", v)
		} else if strings.HasPrefix(what, "field ") && strings.Contains(what, " not found in type ") {
			what = "unknown key"
		}
		if p := paths(line); p != "" {
			errs = append(errs, fmt.Errorf("%s (line %d): %s", p, line, what))
		} else {
			errs = append(errs, fmt.Errorf("line %d: %s", line, what))
		}
	}
	return errors.Join(errs...)
}

// Check validates the configuration, reads the token file and fills in
// defaults. It reports every problem at once, each naming its field.
func (c *Config) Check() error {
	if c.checked {
		return nil
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}

	c.Server = strings.TrimRight(strings.TrimSpace(c.Server), "/")
	c.Server = strings.TrimSuffix(c.Server, "/graphql")
	if c.Server == "" {
		bad("server", "is required (the Lintel server's URL, e.g. https://lintel.example.com)")
	} else if u, err := url.Parse(c.Server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("server", "%q is not an http:// or https:// URL", c.Server)
	}

	switch {
	case c.Token != "" && c.TokenFile != "":
		bad("token", "give token or token_file, not both")
	case c.Token == "" && c.TokenFile == "":
		bad("token", "is required (or token_file): the gateway token createGateway returned")
	case c.TokenFile != "":
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			bad("token_file", "%v", err)
		} else if c.Token = strings.TrimSpace(string(b)); c.Token == "" {
			bad("token_file", "%s is empty", c.TokenFile)
		}
	}
	if c.Token != "" && !strings.HasPrefix(c.Token, "lgw_") {
		field := "token"
		if c.TokenFile != "" {
			field = "token_file"
		}
		bad(field, "is not a gateway token (those start with lgw_)")
	}

	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "is required: the access-list snapshot and the event queue live there")
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("metrics_addr", "%q is not host:port (%v)", c.MetricsAddr, err)
		}
	}
	positive := func(field string, d *time.Duration, def time.Duration) {
		switch {
		case *d == 0:
			*d = def
		case *d < 0:
			bad(field, "%v is negative", *d)
		}
	}
	positive("heartbeat", &c.Heartbeat, DefaultHeartbeat)
	positive("poll", &c.Poll, DefaultPoll)
	positive("rate_limit.window", &c.RateLimit.Window, DefaultDenialWindow)
	positive("rate_limit.lockout", &c.RateLimit.Lockout, DefaultLockout)
	positive("SnapshotEvery", &c.SnapshotEvery, DefaultSnapshotEvery)
	switch {
	case c.RateLimit.Denials == 0:
		c.RateLimit.Denials = DefaultDenials
	case c.RateLimit.Denials < 0:
		bad("rate_limit.denials", "%d is negative", c.RateLimit.Denials)
	case c.RateLimit.Denials > 100000:
		// The limiter keeps each denial's time within the window.
		bad("rate_limit.denials", "%d is more than 100000", c.RateLimit.Denials)
	}
	for field, d := range map[string]time.Duration{"osdp.poll_interval": c.OSDP.PollInterval, "osdp.reply_timeout": c.OSDP.ReplyTimeout,
		"osdp.offline_after": c.OSDP.OfflineAfter, "osdp.offline_retry": c.OSDP.OfflineRetry} {
		if d < 0 {
			bad(field, "%v is negative", d)
		}
	}
	if p := c.OSDP.PollInterval; p != 0 && (p < osdp.MinPollInterval || p > osdp.MaxPollInterval) {
		bad("osdp.poll_interval", "%v is outside %v–%v", p, osdp.MinPollInterval, osdp.MaxPollInterval)
	}

	if len(c.Readers) == 0 {
		bad("readers", "at least one reader is required")
	}
	ids := map[string]int{}
	type portUse struct {
		first int
		osdp  bool
		baud  int
		addrs map[int]string
	}
	ports := map[string]*portUse{}
	for i := range c.Readers {
		r := &c.Readers[i]
		field := fmt.Sprintf("readers[%d]", i)
		if r.ID != "" {
			field = fmt.Sprintf("readers[%d] (%s)", i, r.ID)
		}
		for _, err := range r.check() {
			errs = append(errs, fmt.Errorf("%s.%w", field, err))
		}
		if r.ID != "" {
			if j, dup := ids[r.ID]; dup {
				bad(field+".id", "%q is already the ID of readers[%d]", r.ID, j)
			} else {
				ids[r.ID] = i
			}
		}
		if r.Port == "" {
			continue
		}
		isOSDP := r.Protocol == ProtocolOSDP
		u := ports[r.Port]
		if u == nil {
			ports[r.Port] = &portUse{first: i, osdp: isOSDP, baud: r.Baud, addrs: map[int]string{r.Address: r.ID}}
			continue
		}
		switch {
		case !isOSDP || !u.osdp:
			bad(field+".port", "%s is also the port of readers[%d]; only OSDP readers can share a port", r.Port, u.first)
		case u.baud != r.Baud:
			bad(field+".baud", "%d differs from the %d of readers[%d] on the same port", r.Baud, u.baud, u.first)
		default:
			if other, dup := u.addrs[r.Address]; dup {
				bad(field+".address", "%d is already the address of reader %q on %s", r.Address, other, r.Port)
			}
			u.addrs[r.Address] = r.ID
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.checked = true
	return nil
}

// check validates one reader and fills in its defaults; errors start with
// the field name.
func (r *Reader) check() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch {
	case strings.TrimSpace(r.ID) == "":
		bad("id", "is required")
	case len(r.ID) > 100:
		bad("id", "is longer than 100 characters")
	}
	if r.Port == "" {
		bad("port", "is required (the serial device, e.g. /dev/serial/by-id/…)")
	}
	switch {
	case r.Baud == 0:
		r.Baud = 9600
	case r.Baud < 0:
		bad("baud", "%d is negative", r.Baud)
	}
	r.Protocol = strings.ToLower(strings.TrimSpace(r.Protocol))
	switch r.Protocol {
	case ProtocolOSDP, ProtocolEM4100, ProtocolASCII, ProtocolQR:
	case "":
		bad("protocol", "is required: osdp, em4100, ascii or qr")
	default:
		bad("protocol", "%q is not osdp, em4100, ascii or qr", r.Protocol)
	}
	if r.Address < 0 || r.Address >= int(osdp.BroadcastAddr) {
		bad("address", "%d is outside 0–%d", r.Address, osdp.BroadcastAddr-1)
	} else if r.Address != 0 && r.Protocol != ProtocolOSDP && r.Protocol != "" {
		bad("address", "only OSDP readers have an address")
	}
	switch {
	case strings.TrimSpace(r.Door) == "":
		bad("door", "is required (the door this reader opens)")
	case len(r.Door) > 200:
		bad("door", "is longer than 200 characters")
	}
	r.CardFormat = strings.ToUpper(strings.TrimSpace(r.CardFormat))
	if r.CardFormat == "" {
		r.CardFormat = string(cardid.Decimal)
	}
	if !cardid.Format(r.CardFormat).Valid() {
		bad("card_format", "%q is not one of %v", r.CardFormat, cardid.Formats())
	}
	r.Number = strings.ToLower(strings.TrimSpace(r.Number))
	switch r.Number {
	case "", "decimal", "hex":
		if r.Number != "" && r.Protocol != ProtocolASCII && r.Protocol != "" {
			bad("number", "only ascii readers write numbers as text")
		}
	default:
		bad("number", "%q is not decimal or hex", r.Number)
	}
	if _, err := lineEnding(r.Line.Ending); err != nil {
		bad("line.ending", "%v", err)
	}
	if r.Line != (Line{}) && r.Protocol != ProtocolASCII && r.Protocol != ProtocolQR && r.Protocol != "" {
		bad("line", "only ascii readers and qr scanners send lines")
	}
	switch {
	case r.Pulse == 0:
		r.Pulse = DefaultPulse
	case r.Pulse < 0:
		bad("pulse", "%v is negative", r.Pulse)
	default:
		if _, err := osdp.OutputPulse(0, r.Pulse); err != nil {
			bad("pulse", "%v is longer than a reader can time", r.Pulse)
		}
	}
	return errs
}

// lineEnding reads a line.ending setting.
func lineEnding(s string) (lineproto.Ending, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "any":
		return lineproto.EndAny, nil
	case "cr":
		return lineproto.EndCR, nil
	case "lf":
		return lineproto.EndLF, nil
	case "crlf":
		return lineproto.EndCRLF, nil
	}
	return 0, fmt.Errorf("%q is not any, cr, lf or crlf", s)
}
