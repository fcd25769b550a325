// Package e2e holds the end-to-end tests of the tresor command line: the
// testscript files in testdata/script run the CLI against a real region
// started by servertest. It has no code of its own; it is a separate
// package so that the CLI's unit tests do not depend on the server.
package e2e
