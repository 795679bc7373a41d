package main

// `lintel bench credentials`: times issuing a mobile credential (signed JWT
// and barcode PNG) and verifying a rotating code, next to the raw
// signature primitives they are made of, on this machine. No database.

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/barcodes"
	"github.com/lintel/lintel/internal/credentials"
)

const benchCredentialsUsage = `usage: lintel bench credentials [--n N] [--symbology QR]

Times, on this machine and without a database:
  issue        Claims → signed JWT (Ed25519) + PNG of the card's barcode value, as an
               invitation's redemption does, on one core and on all cores
  verify code  VerifyCode on codes never seen before: an in-memory key set and
               revocation set, the replay cache on
and, for comparison, the primitives they are made of: ed25519.Sign, ed25519.Verify
and ECDSA P-256 verify.

  --n N             operations per measurement (default 2000)
  --symbology S     the barcode: QR, PDF417, CODE128, AZTEC or DATAMATRIX (default QR)
`

// benchBarcodeSize is the width of the barcode PNG, as the wallet gets it.
const benchBarcodeSize = 600

// Rows of the table, in order.
const (
	benchCredIssue1     = "issue: JWT + barcode PNG, 1 core"
	benchCredIssueAll   = "issue: JWT + barcode PNG, all cores"
	benchCredIssueJWT   = "  of which the JWT (Issue)"
	benchCredBarcode    = "  of which the barcode PNG (Render)"
	benchCredVerify     = "verify code (VerifyCode)"
	benchCredEdSign     = "ed25519.Sign"
	benchCredEdVerify   = "ed25519.Verify"
	benchCredECDSAVerif = "ECDSA P-256 verify"
)

var benchCredentialRows = []string{benchCredIssue1, benchCredIssueAll, benchCredIssueJWT, benchCredBarcode,
	benchCredVerify, benchCredEdSign, benchCredEdVerify, benchCredECDSAVerif}

func benchCredentials(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lintel bench credentials", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := fs.Int("n", 2000, "")
	symbology := fs.String("symbology", barcodes.QR, "")
	if help, err := parseBenchFlags(fs, args, stdout, benchCredentialsUsage); help || err != nil {
		return err
	}
	if *n < 1 {
		return &exitError{code: 2, err: errors.New("--n must be at least 1")}
	}
	*symbology = strings.ToUpper(*symbology)
	if !slices.Contains(barcodes.Symbologies, *symbology) {
		return &exitError{code: 2, err: fmt.Errorf("--symbology must be one of %s", strings.Join(barcodes.Symbologies, ", "))}
	}
	fmt.Fprintf(stderr, "bench: %d operations per measurement\n", *n)
	b, err := newCredentialBench(*symbology)
	if err != nil {
		return err
	}
	res, err := b.run(ctx, *n)
	if err != nil {
		return err
	}
	printCredentialBench(stdout, *n, *symbology, res)
	return nil
}

// credentialBench holds an organisation's key, a phone, and a door.
type credentialBench struct {
	symbology string
	key       *credentials.SigningKey
	device    *ecdsa.PrivateKey
	claims    credentials.Claims
	verifier  *credentials.Verifier
}

func newCredentialBench(symbology string) (*credentialBench, error) {
	key, err := credentials.NewSigningKey(uuid.New())
	if err != nil {
		return nil, err
	}
	device, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	dk, err := credentials.NewDeviceKey(&device.PublicKey)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	// A door that has heard of a few thousand revoked credentials.
	revoked := credentials.NewRevocationSet()
	for range 5000 {
		revoked.Add(uuid.New())
	}
	b := &credentialBench{symbology: symbology, key: key, device: device,
		claims: credentials.Claims{Issuer: "https://lintel.example", Audience: "lintel-access", OrgID: key.OrgID,
			TemplateID: uuid.New(), IssuedAt: now, NotBefore: now, ExpiresAt: now.AddDate(1, 0, 0), Device: dk},
		verifier: credentials.NewVerifier(credentials.NewStaticKeySet(key.PublicKey()), revoked, "lintel-access")}
	b.verifier.OrgID = key.OrgID
	return b, nil
}

// issue signs credential i and renders its barcode, as a redemption does.
func (b *credentialBench) issue(i int, withJWT, withPNG bool) error {
	c := b.claimsFor(i)
	if withJWT {
		if _, err := credentials.Issue(b.key, c); err != nil {
			return err
		}
	}
	if withPNG {
		if _, err := barcodes.Render(b.symbology, "EMP-"+c.CardID, benchBarcodeSize); err != nil {
			return err
		}
	}
	return nil
}

// credentialBenchResult is ns/op per row.
type credentialBenchResult map[string]float64

func (b *credentialBench) run(ctx context.Context, n int) (credentialBenchResult, error) {
	res := credentialBenchResult{}
	timeIt := func(row string, op func(i int) error) error {
		start := time.Now()
		for i := range n {
			if err := op(i); err != nil {
				return fmt.Errorf("%s: %w", row, err)
			}
		}
		res[row] = float64(time.Since(start).Nanoseconds()) / float64(n)
		return nil
	}
	// A warm-up, so that first-use costs do not count.
	if err := b.issue(0, true, true); err != nil {
		return nil, err
	}

	if err := timeIt(benchCredIssue1, func(i int) error { return b.issue(i, true, true) }); err != nil {
		return nil, err
	}
	if err := timeIt(benchCredIssueJWT, func(i int) error { return b.issue(i, true, false) }); err != nil {
		return nil, err
	}
	if err := timeIt(benchCredBarcode, func(i int) error { return b.issue(i, false, true) }); err != nil {
		return nil, err
	}
	// All cores: the same n operations shared by GOMAXPROCS goroutines,
	// ns/op of wall time.
	workers := runtime.GOMAXPROCS(0)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := b.issue(i, true, true); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s: %w", benchCredIssueAll, err)
	}
	res[benchCredIssueAll] = float64(time.Since(start).Nanoseconds()) / float64(n)

	// Verify: every code is new (its own credential), so each one runs
	// every check and is remembered by the replay cache. Codes are made in
	// batches just before they are verified, so none grows stale.
	var verifyTotal time.Duration
	for done := 0; done < n; {
		batch := min(n-done, 500)
		codes := make([]string, batch)
		for i := range codes {
			jwt, err := credentials.Issue(b.key, b.claimsFor(done+i))
			if err != nil {
				return nil, err
			}
			if codes[i], err = credentials.SignCode(jwt, time.Now(), b.device); err != nil {
				return nil, err
			}
		}
		start := time.Now()
		for _, code := range codes {
			if _, err := b.verifier.VerifyCode(ctx, code); err != nil {
				return nil, fmt.Errorf("%s: %w", benchCredVerify, err)
			}
		}
		verifyTotal += time.Since(start)
		done += batch
	}
	res[benchCredVerify] = float64(verifyTotal.Nanoseconds()) / float64(n)

	// The primitives, on inputs of the same size as the real ones.
	jwt, err := credentials.Issue(b.key, b.claimsFor(0))
	if err != nil {
		return nil, err
	}
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	msg := []byte(jwt[:strings.LastIndexByte(jwt, '.')])
	edSig := ed25519.Sign(edPriv, msg)
	edPub := edPriv.Public().(ed25519.PublicKey)
	digest := sha256.Sum256([]byte(jwt))
	ecSig, err := ecdsa.SignASN1(rand.Reader, b.device, digest[:])
	if err != nil {
		return nil, err
	}
	if err := timeIt(benchCredEdSign, func(int) error { _ = ed25519.Sign(edPriv, msg); return nil }); err != nil {
		return nil, err
	}
	if err := timeIt(benchCredEdVerify, func(int) error {
		if !ed25519.Verify(edPub, msg, edSig) {
			return errors.New("does not verify")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := timeIt(benchCredECDSAVerif, func(int) error {
		if !ecdsa.VerifyASN1(&b.device.PublicKey, digest[:], ecSig) {
			return errors.New("does not verify")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return res, nil
}

// claimsFor returns the claims of credential i.
func (b *credentialBench) claimsFor(i int) credentials.Claims {
	c := b.claims
	c.ID, c.RecordID, c.CardID = uuid.New(), uuid.New(), fmt.Sprintf("%08d", 10000000+i)
	return c
}

func printCredentialBench(w io.Writer, n int, symbology string, r credentialBenchResult) {
	fmt.Fprintf(w, "lintel bench credentials: n=%d, %s barcode %d px, %d CPUs (GOMAXPROCS %d), %s %s/%s\n\n",
		n, symbology, benchBarcodeSize, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	pad := padColumn("operation", benchCredentialRows, func(s string) string { return s })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tns/op\tops/s\t\n", pad("operation"))
	for _, row := range benchCredentialRows {
		ns := r[row]
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t\n", pad(row), ns, 1e9/ns)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "verify code = %.2f× (Ed25519 verify + P-256 verify)\n",
		r[benchCredVerify]/(r[benchCredEdVerify]+r[benchCredECDSAVerif]))
	fmt.Fprintf(w, "issue JWT = %.2f× ed25519.Sign\n", r[benchCredIssueJWT]/r[benchCredEdSign])
	fmt.Fprintf(w, "issue, all cores = %.2f× issue, 1 core (%d cores)\n", r[benchCredIssue1]/r[benchCredIssueAll], runtime.GOMAXPROCS(0))
}
