// Package auth authenticates operators (argon2id passwords, short-lived
// HS256 access tokens, rotating refresh tokens), throttles logins, and
// carries the caller's Principal through contexts so every domain service
// can scope its queries to the caller's organisation and check its role.
package auth
