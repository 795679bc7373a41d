// Package config is Lintel's one typed configuration. Every option has a
// command-line flag, an environment variable and a default; flags win over
// the environment, which wins over the default. The README's table is the
// list in Options below.
package config

import (
	"encoding/base64"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is everything `lintel serve` can be told.
type Config struct {
	Addr                 string
	DebugAddr            string
	DataDir              string
	DatabaseURL          string
	DBMaxConns           int
	LogLevel             string
	LogFormat            string
	Introspection        string // "auto", "on" or "off"
	MaxBodyBytes         int64
	MaxUploadBytes       int64
	PhotoMaxBytes        int64
	MaxQueryDepth        int
	GraphQLPageRenderer  string // "on" or "off" (see graph.Options.PlainRecordPages)
	MaxComplexity        int
	AllowedOrigins       string
	JWTSecret            string
	AccessTTL            time.Duration
	RefreshTTL           time.Duration
	ShutdownDrain        time.Duration
	ShutdownGrace        time.Duration
	RescueStuckJobsAfter time.Duration
	MaxImportBytes       int64
	ImportRetention      time.Duration
	ExportRetention      time.Duration
	ExportLinkTTL        time.Duration
	AuditRetention       time.Duration
	BootstrapOrg         string
	BootstrapEmail       string
	MasterKey            string
	PublicURL            string
	InvitationTTL        time.Duration
	CredentialTTL        time.Duration
	CodeWindow           time.Duration
	SMTPAddr             string
	SMTPTLS              string // "starttls", "tls" or "none"
	SMTPUsername         string
	SMTPPassword         string
	SMTPFrom             string
	SMTPCAFile           string
}

// Option describes one setting for flags, environment and documentation.
type Option struct {
	Flag, Env, Default, Usage string
	set                       func(c *Config, v string) error
}

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func integer(p func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		*p(c) = n
		return nil
	}
}

func bytesize(p func(*Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := ParseBytes(v)
		if err != nil {
			return err
		}
		*p(c) = n
		return nil
	}
}

func duration(p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 15m)", v)
		}
		*p(c) = d
		return nil
	}
}

// Options lists every setting.
var Options = []Option{
	{"addr", "LINTEL_ADDR", "127.0.0.1:8080", "HTTP listen address", str(func(c *Config) *string { return &c.Addr })},
	{"debug-addr", "LINTEL_DEBUG_ADDR", "", "listen address of a separate HTTP server with Go's /debug/pprof profiles, for diagnosing CPU and memory in production; keep it private (localhost or an internal network); empty: off", str(func(c *Config) *string { return &c.DebugAddr })},
	{"data-dir", "LINTEL_DATA_DIR", "./data", "directory of the embedded PostgreSQL (used when no database URL is set)", str(func(c *Config) *string { return &c.DataDir })},
	{"database-url", "DATABASE_URL", "", "PostgreSQL URL; empty starts the embedded PostgreSQL in the data directory", str(func(c *Config) *string { return &c.DatabaseURL })},
	{"db-max-conns", "LINTEL_DB_MAX_CONNS", "20", "connection pool size per process", integer(func(c *Config) *int { return &c.DBMaxConns })},
	{"log-level", "LINTEL_LOG_LEVEL", "info", "debug, info, warn or error", str(func(c *Config) *string { return &c.LogLevel })},
	{"log-format", "LINTEL_LOG_FORMAT", "json", "json or text", str(func(c *Config) *string { return &c.LogFormat })},
	{"introspection", "LINTEL_INTROSPECTION", "auto", "GraphQL introspection: on, off, or auto (on with the embedded database only)", str(func(c *Config) *string { return &c.Introspection })},
	{"max-body", "LINTEL_MAX_BODY", "1MiB", "largest GraphQL request body (non-upload)", bytesize(func(c *Config) *int64 { return &c.MaxBodyBytes })},
	{"max-upload", "LINTEL_MAX_UPLOAD", "512MiB", "largest multipart upload (CSV imports; spooled to disk past 8 MiB)", bytesize(func(c *Config) *int64 { return &c.MaxUploadBytes })},
	{"max-photo", "LINTEL_MAX_PHOTO", "5MiB", "largest record photo", bytesize(func(c *Config) *int64 { return &c.PhotoMaxBytes })},
	{"max-query-depth", "LINTEL_MAX_QUERY_DEPTH", "12", "deepest GraphQL selection allowed", integer(func(c *Config) *int { return &c.MaxQueryDepth })},
	{"max-query-complexity", "LINTEL_MAX_QUERY_COMPLEXITY", "20000", "largest GraphQL query complexity allowed", integer(func(c *Config) *int { return &c.MaxComplexity })},
	{"graphql-page-renderer", "LINTEL_GRAPHQL_PAGE_RENDERER", "on", "on: pages of records are written by Lintel's own renderer (the same JSON, several times faster); off: by gqlgen's general executor", str(func(c *Config) *string { return &c.GraphQLPageRenderer })},
	{"allowed-origins", "LINTEL_ALLOWED_ORIGINS", "", "comma-separated host patterns of web consoles allowed to open WebSockets (same origin always is)", str(func(c *Config) *string { return &c.AllowedOrigins })},
	{"jwt-secret", "LINTEL_JWT_SECRET", "", "base64 key (≥32 bytes) signing access tokens; empty generates one and stores it in the database", str(func(c *Config) *string { return &c.JWTSecret })},
	{"access-ttl", "LINTEL_ACCESS_TTL", "15m", "lifetime of access tokens", duration(func(c *Config) *time.Duration { return &c.AccessTTL })},
	{"refresh-ttl", "LINTEL_REFRESH_TTL", "720h", "lifetime of refresh tokens", duration(func(c *Config) *time.Duration { return &c.RefreshTTL })},
	{"shutdown-drain", "LINTEL_SHUTDOWN_DRAIN", "5s", "on SIGTERM or SIGINT, how long /readyz answers 503 while requests are still served, so a load balancer moves new traffic to other replicas before this one stops (a second signal ends it early); 0 stops at once", duration(func(c *Config) *time.Duration { return &c.ShutdownDrain })},
	{"shutdown-grace", "LINTEL_SHUTDOWN_GRACE", "15s", "how long shutdown waits for requests in flight", duration(func(c *Config) *time.Duration { return &c.ShutdownGrace })},
	{"rescue-stuck-jobs-after", "LINTEL_RESCUE_STUCK_JOBS_AFTER", "1h", "how long a job may run before another replica takes it over (must exceed the 30m import timeout)", duration(func(c *Config) *time.Duration { return &c.RescueStuckJobsAfter })},
	{"max-import", "LINTEL_MAX_IMPORT", "512MiB", "largest CSV file an import accepts", bytesize(func(c *Config) *int64 { return &c.MaxImportBytes })},
	{"import-retention", "LINTEL_IMPORT_RETENTION", "0", "delete finished imports (file, per-row results) this long after they end; 0 keeps them forever", duration(func(c *Config) *time.Duration { return &c.ImportRetention })},
	{"export-retention", "LINTEL_EXPORT_RETENTION", "24h", "delete export files this long after they are written; 0 keeps them", duration(func(c *Config) *time.Duration { return &c.ExportRetention })},
	{"export-link-ttl", "LINTEL_EXPORT_LINK_TTL", "15m", "how long a signed export download link works", duration(func(c *Config) *time.Duration { return &c.ExportLinkTTL })},
	{"audit-retention", "LINTEL_AUDIT_RETENTION", "0", "delete audit events this long after they happen; 0 keeps them forever", duration(func(c *Config) *time.Duration { return &c.AuditRetention })},
	{"bootstrap-org", "LINTEL_BOOTSTRAP_ORG", "Default organisation", "name of the organisation created on first start", str(func(c *Config) *string { return &c.BootstrapOrg })},
	{"bootstrap-email", "LINTEL_BOOTSTRAP_EMAIL", "admin@lintel.local", "e-mail of the admin created on first start", str(func(c *Config) *string { return &c.BootstrapEmail })},
	{"master-key", "LINTEL_MASTER_KEY", "", "base64 32-byte key sealing credential issuing keys and pending e-mail secrets; empty uses DATA/master-key (created once) with the embedded database and is an error with an external one", str(func(c *Config) *string { return &c.MasterKey })},
	{"public-url", "LINTEL_PUBLIC_URL", "", "base URL cardholders' phones reach this service at (invitation links, credential issuer); empty means http://ADDR", str(func(c *Config) *string { return &c.PublicURL })},
	{"invitation-ttl", "LINTEL_INVITATION_TTL", "168h", "how long an invitation link works", duration(func(c *Config) *time.Duration { return &c.InvitationTTL })},
	{"credential-ttl", "LINTEL_CREDENTIAL_TTL", "8760h", "longest lifetime of a mobile credential (never past the record's expiry)", duration(func(c *Config) *time.Duration { return &c.CredentialTTL })},
	{"code-window", "LINTEL_CODE_WINDOW", "30s", "how old a wallet's rotating code may be when a door checks it (a screenshot stops working after this)", duration(func(c *Config) *time.Duration { return &c.CodeWindow })},
	{"smtp-addr", "LINTEL_SMTP_ADDR", "", "SMTP server host:port; empty keeps e-mail in the outbox (see lintel outbox) and logs invitation links", str(func(c *Config) *string { return &c.SMTPAddr })},
	{"smtp-tls", "LINTEL_SMTP_TLS", "starttls", "starttls (required), tls (implicit TLS, port 465) or none (loopback servers only)", str(func(c *Config) *string { return &c.SMTPTLS })},
	{"smtp-username", "LINTEL_SMTP_USERNAME", "", "SMTP AUTH user name; empty sends without AUTH", str(func(c *Config) *string { return &c.SMTPUsername })},
	{"smtp-password", "LINTEL_SMTP_PASSWORD", "", "SMTP AUTH password", str(func(c *Config) *string { return &c.SMTPPassword })},
	{"smtp-from", "LINTEL_SMTP_FROM", "Lintel <no-reply@lintel.local>", "From address of e-mail", str(func(c *Config) *string { return &c.SMTPFrom })},
	{"smtp-ca-file", "LINTEL_SMTP_CA_FILE", "", "PEM file of CA certificates trusted for the SMTP server, in addition to the system's", str(func(c *Config) *string { return &c.SMTPCAFile })},
}

// Load parses args (without the subcommand) over the environment over the
// defaults.
func Load(name string, args []string, getenv func(string) string) (*Config, []string, error) {
	c := &Config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	values := map[string]*string{}
	for _, o := range Options {
		v := o.Default
		if env := getenv(o.Env); env != "" {
			v = env
		}
		values[o.Flag] = fs.String(o.Flag, v, fmt.Sprintf("%s (env %s)", o.Usage, o.Env))
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	for _, o := range Options {
		if err := o.set(c, *values[o.Flag]); err != nil {
			return nil, nil, fmt.Errorf("--%s / %s: %w", o.Flag, o.Env, err)
		}
	}
	if c.GraphQLPageRenderer != "on" && c.GraphQLPageRenderer != "off" {
		return nil, nil, fmt.Errorf("--graphql-page-renderer: must be on or off")
	}
	if c.Introspection != "auto" && c.Introspection != "on" && c.Introspection != "off" {
		return nil, nil, fmt.Errorf("--introspection: must be on, off or auto")
	}
	if c.ExportLinkTTL <= 0 {
		return nil, nil, fmt.Errorf("--export-link-ttl / LINTEL_EXPORT_LINK_TTL: must be positive")
	}
	if c.ShutdownDrain < 0 || c.ShutdownGrace < 0 {
		return nil, nil, fmt.Errorf("--shutdown-drain and --shutdown-grace must not be negative")
	}
	if c.ExportRetention < 0 || c.AuditRetention < 0 {
		return nil, nil, fmt.Errorf("--export-retention and --audit-retention must not be negative")
	}
	switch c.SMTPTLS {
	case "starttls", "tls", "none":
	default:
		return nil, nil, fmt.Errorf("--smtp-tls / LINTEL_SMTP_TLS: must be starttls, tls or none")
	}
	if c.InvitationTTL <= 0 || c.CredentialTTL <= 0 {
		return nil, nil, fmt.Errorf("--invitation-ttl and --credential-ttl must be positive")
	}
	if c.CodeWindow < time.Second || c.CodeWindow > 5*time.Minute {
		return nil, nil, fmt.Errorf("--code-window / LINTEL_CODE_WINDOW: must be between 1s and 5m")
	}
	if _, err := c.MasterKeyBytes(); err != nil {
		return nil, nil, err
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, nil, fmt.Errorf("--public-url / LINTEL_PUBLIC_URL: %q is not an absolute http(s) URL", c.PublicURL)
		}
	} else if c.SMTPAddr != "" {
		// Links in e-mail must reach the server from a phone, which the
		// listen address (often 127.0.0.1 behind a proxy) does not.
		return nil, nil, fmt.Errorf("--public-url / LINTEL_PUBLIC_URL is required with an SMTP server: invitation links must name the address phones reach (https, since the wallet's key needs a secure page)")
	}
	return c, fs.Args(), nil
}

// MasterKeyBytes decodes the configured master key; nil when none is set.
func (c *Config) MasterKeyBytes() ([]byte, error) {
	if c.MasterKey == "" {
		return nil, nil
	}
	k, err := base64.StdEncoding.DecodeString(c.MasterKey)
	if err != nil {
		return nil, fmt.Errorf("LINTEL_MASTER_KEY is not base64: %w", err)
	}
	if len(k) != 32 {
		return nil, fmt.Errorf("LINTEL_MASTER_KEY must decode to exactly 32 bytes, got %d", len(k))
	}
	return k, nil
}

// BaseURL is where phones reach this service, without a trailing slash.
func (c *Config) BaseURL() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	return "http://" + c.Addr
}

// FromEnv loads with no flags, from the process environment.
func FromEnv() (*Config, error) {
	c, _, err := Load("lintel", nil, os.Getenv)
	return c, err
}

// IntrospectionEnabled resolves "auto": introspection helps a developer on
// the embedded database and is off for a production database.
func (c *Config) IntrospectionEnabled() bool {
	switch c.Introspection {
	case "on":
		return true
	case "off":
		return false
	}
	return c.DatabaseURL == ""
}

// Origins returns the WebSocket origin allowlist.
func (c *Config) Origins() []string {
	var out []string
	for _, o := range strings.Split(c.AllowedOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// SigningKey decodes the configured JWT secret, if any.
func (c *Config) SigningKey() ([]byte, error) {
	if c.JWTSecret == "" {
		return nil, nil
	}
	k, err := base64.StdEncoding.DecodeString(c.JWTSecret)
	if err != nil {
		return nil, fmt.Errorf("LINTEL_JWT_SECRET is not base64: %w", err)
	}
	if len(k) < 32 {
		return nil, fmt.Errorf("LINTEL_JWT_SECRET must decode to at least 32 bytes, got %d", len(k))
	}
	return k, nil
}

// ParseBytes reads sizes like 512, 64KiB, 5MiB, 1GiB (or KB/MB/GB as powers
// of 1000).
func ParseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 5MiB)", s)
	}
	return n * mult, nil
}
