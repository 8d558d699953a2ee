package recovery

import "log/slog"

// An Option configures the interceptors. Options are applied in order; a
// later one overrides an earlier one.
type Option interface {
	apply(*options)
}

type options struct {
	logger *slog.Logger
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithLogger sets the logger that receives each recovered panic, at
// [slog.LevelError], with its value and stack. The default, and the value
// used for a nil logger, discards them.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) { o.logger = l })
}

// evaluate returns fresh options with opts applied over the defaults.
func evaluate(opts []Option) *options {
	o := &options{}
	for _, opt := range opts {
		opt.apply(o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	return o
}
