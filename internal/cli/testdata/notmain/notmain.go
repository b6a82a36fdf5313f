// Package notmain is not a main package: `fnctl deploy` must say so
// instead of trying to run what go build made of it.
package notmain

// F is here so the package has something to build.
func F() {}
