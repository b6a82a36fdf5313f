// Command nosubs is a function binary that declares no subscribers: the
// tests check that microfn refuses it with a clear reason.
package main

import "github.com/microfn/microfn/fn"

func main() { fn.Main() }
