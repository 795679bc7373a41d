package store

// ApplyMigrations exposes applyMigrations to the black-box tests.
var ApplyMigrations = (*DB).applyMigrations
