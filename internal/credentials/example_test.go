package credentials_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/credentials"
)

// A door gateway verifies the codes phones show, with the keys of the
// server's JWKS and the revocation feed it follows.
func ExampleVerifier_VerifyCode() {
	org := uuid.New()
	key, _ := credentials.NewSigningKey(org) // the server's, in real life
	phone, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	device, _ := credentials.NewDeviceKey(&phone.PublicKey)
	now := time.Now()
	credential, _ := credentials.Issue(key, credentials.Claims{ID: uuid.New(), Audience: "lintel-access", OrgID: org,
		RecordID: uuid.New(), TemplateID: uuid.New(), CardID: "0042", IssuedAt: now, NotBefore: now,
		ExpiresAt: now.AddDate(1, 0, 0), Device: device})

	// The gateway.
	published, _ := credentials.ParseJWKS(credentials.JWKS([]credentials.PublicKey{key.PublicKey()}))
	door := credentials.NewVerifier(credentials.NewStaticKeySet(published...), credentials.NewRevocationSet(), "lintel-access")
	door.OrgID = org

	// The phone shows a code; the door scans it, twice.
	code, _ := credentials.SignCode(credential, now, phone)
	for range 2 {
		v, err := door.VerifyCode(context.Background(), code)
		if err != nil {
			fmt.Println("refused:", credentials.ReasonOf(err))
			continue
		}
		fmt.Println("open for card", v.CardID)
	}
	// Output:
	// open for card 0042
	// refused: REPLAYED
}
