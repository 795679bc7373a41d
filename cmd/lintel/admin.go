package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/auth"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/config"
	"github.com/lintel/lintel/internal/pgembed"
	"github.com/lintel/lintel/internal/store"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// openForAdmin opens the database for a one-shot administrative command.
func openForAdmin(ctx context.Context, name string, args []string, getenv func(string) string) (*database, []string, error) {
	cfg, rest, err := config.Load(name, args, getenv)
	if err != nil {
		return nil, nil, &exitError{code: 2, err: err}
	}
	db, err := openDatabase(ctx, cfg, quietLogger())
	if err != nil {
		return nil, nil, err
	}
	return db, rest, nil
}

func migrateCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return &exitError{code: 2, err: errors.New("migrate needs up, down or status")}
	}
	action := args[0]
	if action != "up" && action != "down" && action != "status" {
		return &exitError{code: 2, err: fmt.Errorf("unknown migrate action %q (up, down or status)", action)}
	}
	cfg, _, err := config.Load("lintel migrate "+action, args[1:], getenv)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	// Open without migrating: "down" and "status" must see the schema as it is.
	d := &database{}
	url := cfg.DatabaseURL
	if url == "" {
		emb, err := pgembed.Start(ctx, pgembed.Options{DataDir: cfg.DataDir, Logger: quietLogger()})
		if err != nil {
			return fmt.Errorf("start embedded PostgreSQL: %w", err)
		}
		d.embedded = emb
		url = emb.URL("")
	}
	defer d.Close()
	db, err := store.Open(ctx, url, store.Options{MaxConns: 4})
	if err != nil {
		return err
	}
	d.DB = db
	switch action {
	case "up":
		if err := db.MigrateUp(ctx); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "database is up to date")
		return nil
	case "down":
		names, err := db.MigrateDown(ctx)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			fmt.Fprintln(stdout, "nothing to roll back")
		}
		for _, n := range names {
			fmt.Fprintln(stdout, "rolled back", n)
		}
		return nil
	case "status":
		return db.MigrationStatus(ctx, stdout)
	}
	return &exitError{code: 2, err: fmt.Errorf("unknown migrate action %q (up, down or status)", action)}
}

func operatorCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return &exitError{code: 2, err: errors.New("operator needs create, set-password or list")}
	}
	action := args[0]
	fs := flag.NewFlagSet("lintel operator "+action, flag.ContinueOnError)
	email := fs.String("email", "", "operator e-mail")
	role := fs.String("role", "OPERATOR", "ADMIN, OPERATOR or VIEWER")
	org := fs.String("org", "", "organisation name (created if missing; default: the only organisation)")
	name := fs.String("name", "", "display name")
	password := fs.String("password", "", "password (default: a random one, printed once)")
	// Configuration flags pass through to config.Load.
	var opFlags, cfgArgs []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		key := flagName(a)
		if key == "email" || key == "role" || key == "org" || key == "name" || key == "password" {
			opFlags = append(opFlags, a)
			if !hasValue(a) && i+1 < len(args) {
				i++
				opFlags = append(opFlags, args[i])
			}
			continue
		}
		cfgArgs = append(cfgArgs, a)
	}
	if err := fs.Parse(opFlags); err != nil {
		return &exitError{code: 2, err: err}
	}
	db, _, err := openForAdmin(ctx, "lintel operator "+action, cfgArgs, getenv)
	if err != nil {
		return err
	}
	defer db.Close()
	svc := auth.NewService(db.Bun, nil, auth.DefaultConfig())
	switch action {
	case "create":
		if *email == "" {
			return &exitError{code: 2, err: errors.New("--email is required")}
		}
		orgID, err := resolveOrg(ctx, db, svc, *org)
		if err != nil {
			return err
		}
		pw, generated := *password, false
		if pw == "" {
			pw, generated = auth.RandomPassword(), true
		}
		op, err := svc.CreateOperator(ctx, auth.NewOperator{OrgID: orgID, Email: *email, Name: *name, Role: caller.Role(*role), Password: pw})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created %s operator %s in %q\n", op.Role, op.Email, op.OrgName)
		if generated {
			fmt.Fprintf(stdout, "one-time password: %s\n", pw)
		}
		return nil
	case "set-password":
		if *email == "" {
			return &exitError{code: 2, err: errors.New("--email is required")}
		}
		pw, generated := *password, false
		if pw == "" {
			pw, generated = auth.RandomPassword(), true
		}
		if err := svc.SetPassword(ctx, *email, pw); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password of %s changed; its sessions are revoked\n", *email)
		if generated {
			fmt.Fprintf(stdout, "one-time password: %s\n", pw)
		}
		return nil
	case "list":
		ops, err := svc.ListOperators(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ORGANISATION\tEMAIL\tROLE\tNAME")
		for _, o := range ops {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.OrgName, o.Email, o.Role, o.Name)
		}
		return tw.Flush()
	}
	return &exitError{code: 2, err: fmt.Errorf("unknown operator action %q", action)}
}

// resolveOrg finds (or creates) the named organisation; with no name, the
// only organisation there is.
func resolveOrg(ctx context.Context, db *database, svc *auth.Service, name string) (id uuid.UUID, err error) {
	if name != "" {
		id, err := svc.OrganisationByName(ctx, name)
		if err == nil {
			return id, nil
		}
		return svc.CreateOrganisation(ctx, name)
	}
	var ids []uuid.UUID
	if err := db.Bun.NewRaw(`SELECT id FROM organisations`).Scan(ctx, &ids); err != nil {
		return id, fmt.Errorf("list organisations: %w", err)
	}
	if len(ids) != 1 {
		return id, &exitError{code: 2, err: fmt.Errorf("there are %d organisations: name one with --org", len(ids))}
	}
	return ids[0], nil
}

func flagName(a string) string {
	for len(a) > 0 && a[0] == '-' {
		a = a[1:]
	}
	for i := range a {
		if a[i] == '=' {
			return a[:i]
		}
	}
	return a
}

func hasValue(a string) bool {
	for i := range a {
		if a[i] == '=' {
			return true
		}
	}
	return false
}
