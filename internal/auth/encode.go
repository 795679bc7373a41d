package auth

import "encoding/base64"

func encodeToken(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
