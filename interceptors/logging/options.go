package logging

import (
	tetherv1 "github.com/tetherhq/tether/gen/tether/v1"
)

// An Option configures the interceptors. Options are applied in order; a
// later one overrides an earlier one.
type Option interface {
	apply(*options)
}

type options struct {
	sessionMethods map[string]bool
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithSessionMethods sets the full method names ("/package.Service/Method")
// of the long-lived session methods, whose finish is logged at Info with
// [SessionCodeToLevel]. It replaces the default,
// tether.v1.TetherService/Connect. Calling it with no names leaves no
// session methods.
func WithSessionMethods(fullMethods ...string) Option {
	return optionFunc(func(o *options) {
		o.sessionMethods = make(map[string]bool, len(fullMethods))
		for _, m := range fullMethods {
			o.sessionMethods[m] = true
		}
	})
}

// evaluate returns fresh options with opts applied over the defaults.
func evaluate(opts []Option) *options {
	o := &options{
		sessionMethods: map[string]bool{tetherv1.TetherService_Connect_FullMethodName: true},
	}
	for _, opt := range opts {
		opt.apply(o)
	}
	return o
}
