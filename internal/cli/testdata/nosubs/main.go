// Command nosubs declares no subscribers: `fnctl deploy` must refuse it
// with the binary's own explanation.
package main

import "github.com/microfn/microfn/fn"

func main() { fn.Main() }
