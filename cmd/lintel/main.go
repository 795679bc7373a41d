// Command lintel is Lintel's one binary: the GraphQL server, migrations and
// operator administration.
//
//	lintel serve                      run the server (embedded PostgreSQL unless DATABASE_URL is set)
//	lintel migrate up|down|status     manage the database schema
//	lintel operator create|set-password|list
//	lintel outbox [--status S] [--limit N] [--links]
//	lintel import | export | bench …
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: lintel <command> [flags]

commands:
  serve                               run the GraphQL server
  migrate up|down|status              apply, roll back (last group) or list migrations
  operator create --email E --role R [--org NAME] [--name N] [--password P]
  operator set-password --email E [--password P]
  operator list
  import --server URL --template T [flags] FILE
                                      upload, preview, confirm and apply a CSV import through
                                      the API (own flags and exit codes: "lintel import -h")
  bench import [--rows N] [--json]    time an import against COPY and hand-written SQL baselines
  export --server URL --template T [--filter K=V]… [--columns a,b] [--bom] -o FILE
                                      export a template's records as CSV through the API
  bench export [--rows N]             time an export against COPY (SELECT …) TO STDOUT
  outbox [--status S] [--limit N] [--links]
                                      list e-mail of every organisation, newest first; --links
                                      also prints held/pending invitation links (needs the master key)
  gateway [--config gateway.yaml]     drive a site's door readers and decide locally from the
                                      synced access list (own flags: "lintel gateway -h")

Every command takes the configuration flags of "lintel serve -h" (or their
environment variables), notably --data-dir and --database-url.
`

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "serve" || os.Args[1] == "bench") {
		useServerGC()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if code != 0 {
			fmt.Fprintln(os.Stderr, "lintel:", err)
		}
		os.Exit(code)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2, err: errors.New("no command given")}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, getenv)
	case "migrate":
		return migrateCmd(ctx, args[1:], stdout, getenv)
	case "operator":
		return operatorCmd(ctx, args[1:], stdout, getenv)
	case "import":
		return importCmd(ctx, args[1:], stdout, stderr, getenv)
	case "bench":
		return benchCmd(ctx, args[1:], stdout, stderr, getenv)
	case "export":
		return exportCmd(ctx, args[1:], stdout, stderr, getenv)
	case "outbox":
		return outboxCmd(ctx, args[1:], stdout, getenv)
	case "gateway":
		return gatewayCmd(ctx, args[1:], stderr, getenv)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &exitError{code: 2, err: fmt.Errorf("unknown command %q", args[0])}
}
