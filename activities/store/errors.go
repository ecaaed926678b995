package store

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Transient reports whether err is a fault that can pass — the database is
// restarting, unreachable, overloaded, or the transaction lost a race — so
// the same call may succeed later. Refusals (ErrInvalid, ErrNotFound, a
// constraint or data error, bad SQL) are not transient: repeating them
// cannot help.
//
// Classes by SQLSTATE (PostgreSQL, Appendix A): 08 connection exception,
// 53 insufficient resources, 57 operator intervention (admin shutdown,
// cannot connect now), 58 system error, 40001 serialization failure,
// 40P01 deadlock; plus network errors, timeouts and pgconn's own connect
// errors (no SQLSTATE).
func Transient(err error) bool {
	if err == nil || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch code := pgErr.Code; {
		case code == "40001", code == "40P01":
			return true
		case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"), strings.HasPrefix(code, "57"), strings.HasPrefix(code, "58"):
			return true
		default:
			return false
		}
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) || pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	// A connection that broke mid-query ("conn closed", "unexpected EOF")
	// comes without a type; pgconn marks whether anything was sent.
	return pgconn.SafeToRetry(err) || strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "unexpected EOF") ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}

// Refused reports whether err is a known refusal: the call is wrong, not
// the moment (ErrInvalid, or PostgreSQL rejecting the statement or its
// data — any SQLSTATE that Transient does not list). Unknown errors are
// not refusals: callers retry them.
func Refused(err error) bool {
	if errors.Is(err, ErrInvalid) {
		return true
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && !Transient(err)
}
