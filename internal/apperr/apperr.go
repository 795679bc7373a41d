// Package apperr is Lintel's one error type. Domain packages return *Error
// with a Code; the API layer turns the code into GraphQL's extensions.code
// (and HTTP status) in one table. Anything that is not an *Error is internal
// and is never shown to a client.
package apperr

import (
	"errors"
	"fmt"
	"strings"
)

// Code classifies an error for clients.
type Code string

// The codes clients see in extensions.code.
const (
	Invalid            Code = "INVALID_ARGUMENT"
	ValidationFailed   Code = "VALIDATION_FAILED"
	NotFound           Code = "NOT_FOUND"
	Conflict           Code = "CONFLICT"
	FailedPrecondition Code = "FAILED_PRECONDITION"
	Unauthenticated    Code = "UNAUTHENTICATED"
	Forbidden          Code = "FORBIDDEN"
	RateLimited        Code = "RATE_LIMITED"
	TooLarge           Code = "PAYLOAD_TOO_LARGE"
	Unavailable        Code = "UNAVAILABLE"
	Internal           Code = "INTERNAL"
)

// FieldError names one bad input field and why it is bad. Path uses the
// input's shape, e.g. "input.fields.email" or "input.cardId".
type FieldError struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Error is an error a client may see.
type Error struct {
	Code    Code
	Message string
	Fields  []FieldError
	// Extra carries additional machine-readable details (for example the
	// retry delay of RATE_LIMITED).
	Extra map[string]any
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Path + ": " + f.Reason
	}
	return e.Message + " (" + strings.Join(parts, "; ") + ")"
}

// New returns an error with code and a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Validation returns a VALIDATION_FAILED error listing every bad field.
func Validation(fields ...FieldError) *Error {
	return &Error{Code: ValidationFailed, Message: "validation failed", Fields: fields}
}

// NotFoundf is shorthand for a NOT_FOUND error.
func NotFoundf(format string, args ...any) *Error { return New(NotFound, format, args...) }

// CodeOf returns the code of err: "" for nil, Internal when err is not an
// *Error.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Fields collects field errors while a value is being checked.
type Fields []FieldError

// Add records a bad field.
func (fs *Fields) Add(path, format string, args ...any) {
	*fs = append(*fs, FieldError{Path: path, Reason: fmt.Sprintf(format, args...)})
}

// Err returns a VALIDATION_FAILED error, or nil when nothing was added.
func (fs Fields) Err() error {
	if len(fs) == 0 {
		return nil
	}
	return Validation(fs...)
}
