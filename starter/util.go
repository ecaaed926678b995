package main

import (
	"io"
	"log/slog"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
)

// quietLogger keeps the SDK's info lines out of CLI output.
func quietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// searchAttrs decodes visibility search attributes into Go values.
func searchAttrs(sa *commonpb.SearchAttributes) (map[string]any, error) {
	out := map[string]any{}
	if sa == nil {
		return out, nil
	}
	dc := converter.GetDefaultDataConverter()
	for k, p := range sa.IndexedFields {
		var v any
		if err := dc.FromPayload(p, &v); err != nil {
			continue
		}
		if f, ok := v.(float64); ok {
			v = int64(f)
		}
		out[k] = v
	}
	return out, nil
}
