package resource

import (
	"errors"
	"fmt"
)

// configError is a mistake in the pipeline's configuration or inputs. It is
// terminal: retrying cannot fix it.
type configError struct{ msg string }

func (e configError) Error() string { return e.msg }

// ConfigErrorf makes a terminal configuration error.
func ConfigErrorf(format string, args ...any) error {
	return configError{fmt.Sprintf(format, args...)}
}

// IsConfigError reports whether err (or any error it joins or wraps) is a
// configuration error, which must never be retried.
func IsConfigError(err error) bool {
	var ce configError
	return errors.As(err, &ce)
}
