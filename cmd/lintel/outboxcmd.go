package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/lintel/lintel/internal/config"
	"github.com/lintel/lintel/internal/outbox"
	"github.com/lintel/lintel/internal/sealer"
)

// outboxCmd lists the e-mail outbox of every organisation, newest first:
// what was sent, what waits, what failed and why. With --links it also
// prints the invitation links of held and pending messages, for a server
// without SMTP (it needs the master key to open them).
func outboxCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("lintel outbox", flag.ContinueOnError)
	status := fs.String("status", "", "only messages with this status: PENDING, HELD, SENT, FAILED or CANCELLED")
	limit := fs.Int("limit", 50, "how many messages to list, newest first")
	links := fs.Bool("links", false, "also print the links of held and pending invitations (needs the master key)")
	// Configuration flags pass through to config.Load.
	var own, cfgArgs []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch flagName(a) {
		case "links", "h", "help":
			own = append(own, a)
		case "status", "limit":
			own = append(own, a)
			if !hasValue(a) && i+1 < len(args) {
				i++
				own = append(own, args[i])
			}
		default:
			cfgArgs = append(cfgArgs, a)
		}
	}
	if err := fs.Parse(own); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &exitError{code: 2, err: err}
	}
	want := outbox.Status(strings.ToUpper(*status))
	if want != "" && !want.Valid() {
		return &exitError{code: 2, err: fmt.Errorf("--status: %q is not PENDING, HELD, SENT, FAILED or CANCELLED", *status)}
	}
	if *limit < 1 || *limit > 10000 {
		return &exitError{code: 2, err: errors.New("--limit must be between 1 and 10000")}
	}
	cfg, rest, err := config.Load("lintel outbox", cfgArgs, getenv)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if len(rest) > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected arguments: %s", strings.Join(rest, " "))}
	}
	var seal *sealer.Sealer
	if *links {
		if seal, err = newSealer(cfg); err != nil {
			return err
		}
	}
	db, err := openDatabase(ctx, cfg, quietLogger())
	if err != nil {
		return err
	}
	defer db.Close()

	svc := outbox.New(db.DB, seal, outbox.Config{}, quietLogger())
	entries, err := svc.Recent(ctx, outbox.RecentOptions{Status: want, Limit: *limit, Links: *links})
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		if want != "" {
			fmt.Fprintf(stdout, "no %s e-mail in the outbox\n", want)
		} else {
			fmt.Fprintln(stdout, "the outbox is empty")
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	head := "TIME\tSTATUS\tKIND\tORGANISATION\tRECIPIENT\tSUBJECT\tATTEMPTS\tLAST ERROR"
	if *links {
		head += "\tLINK"
	}
	fmt.Fprintln(tw, head)
	for _, e := range entries {
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s", e.CreatedAt.Local().Format("2006-01-02 15:04:05"), e.Status, e.Kind,
			cell(e.Organisation, 30), cell(e.Recipient, 60), cell(e.Subject, 50), e.Attempts, cell(orDash(e.LastError), 80))
		if *links {
			line += "\t" + orDash(cell(e.Link, 500))
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

// cell makes v safe for one table cell: control characters (tabs, line
// breaks, terminal escapes) become spaces, and it is cut at max characters.
func cell(v string, max int) string {
	v = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, v)
	if r := []rune(v); len(r) > max {
		v = string(r[:max-1]) + "…"
	}
	return v
}

func orDash(v string) string {
	if v == "" {
		return "-"
	}
	return v
}
