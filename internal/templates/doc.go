// Package templates defines card templates — the fields a card record
// carries, their types and rules, the barcode symbology and the card-ID
// format — and checks record values against them.
package templates
