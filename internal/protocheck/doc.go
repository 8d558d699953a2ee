// Package protocheck holds the checks that keep the wire contract honest:
// proto/ passes buf lint (STANDARD), and buf generate reproduces the
// committed gen/ exactly. buf and the protoc plugins are the versions
// pinned in tools/go.mod. It has no code of its own; see its tests.
package protocheck
