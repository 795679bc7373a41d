package main

import (
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/barcodes"
	"github.com/lintel/lintel/internal/invitations"
	"github.com/lintel/lintel/internal/records"
	"github.com/lintel/lintel/internal/templates"
)

// barcodeHandler renders a record's barcode value in its template's
// symbology as PNG, for a caller of its organisation (?size= width in
// pixels).
func barcodeHandler(recs *records.Service, tpls *templates.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := uuid.Parse(r.PathValue("id"))
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		size := 0
		if v := r.URL.Query().Get("size"); v != "" {
			if size, err = strconv.Atoi(v); err != nil || size < 64 || size > 2048 {
				http.Error(w, "size must be a whole number of pixels from 64 to 2048", http.StatusBadRequest)
				return
			}
		}
		rec, err := recs.Get(r.Context(), id)
		if err != nil {
			writeDomainError(w, err)
			return
		}
		t, err := tpls.Get(r.Context(), rec.TemplateID)
		if err != nil {
			writeDomainError(w, err)
			return
		}
		png, err := barcodes.Render(string(t.Symbology), rec.BarcodeValue, size)
		if err != nil {
			http.Error(w, "the barcode value cannot be rendered: "+err.Error(), http.StatusUnprocessableEntity)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Control", "private, max-age=60")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(png)
	})
}

// jwksHandler publishes the issuing keys' public halves.
func jwksHandler(svc *invitations.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := svc.JWKS(r.Context())
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		// Short: a rotation must reach gateways quickly.
		w.Header().Set("Cache-Control", "public, max-age=60")
		_, _ = w.Write(body)
	})
}

// walletPhotoHandler serves the cardholder's photo to the holder of a live
// invitation link.
func walletPhotoHandler(svc *invitations.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct, data, err := svc.Photo(r.Context(), r.PathValue("token"))
		if err != nil {
			if apperr.CodeOf(err) == apperr.RateLimited {
				http.Error(w, "too many attempts", http.StatusTooManyRequests)
				return
			}
			writeDomainError(w, err)
			return
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Cache-Control", "private, no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(data)
	})
}
