package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Delivery outcomes of one webhook attempt (wms_deliveries.outcome).
const (
	DeliveryDelivered = "delivered" // the receiver answered 2xx
	DeliveryRetrying  = "retrying"  // network error, 408, 429 or 5xx: tried again
	DeliveryRejected  = "rejected"  // another 4xx: final
)

// Delivery is one attempt to POST a mission event to a WMS webhook.
type Delivery struct {
	ID         int64         `json:"id"`
	At         time.Time     `json:"at"`
	Client     string        `json:"client"`
	EventID    string        `json:"eventId"`
	MissionID  string        `json:"missionId"`
	Kind       string        `json:"kind"`                 // schemas.WMSEvent kind, e.g. "completed"
	Attempt    int           `json:"attempt"`              // from 1
	Outcome    string        `json:"outcome"`              // Delivery*
	HTTPStatus int           `json:"httpStatus,omitempty"` // 0 when no answer came
	Error      string        `json:"error,omitempty"`
	Duration   time.Duration `json:"durationNs"` // of the POST (milliseconds in the table)
}

// RecordDelivery appends one attempt to wms_deliveries.
func (s *Store) RecordDelivery(ctx context.Context, d Delivery) error {
	var status *int
	if d.HTTPStatus != 0 {
		status = &d.HTTPStatus
	}
	var errText *string
	if d.Error != "" {
		errText = &d.Error
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO wms_deliveries
		(client, event_id, mission_id, kind, attempt, outcome, http_status, error, duration_ms)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		d.Client, d.EventID, d.MissionID, d.Kind, d.Attempt, d.Outcome, status, errText, d.Duration.Milliseconds())
	if err != nil {
		return fmt.Errorf("record delivery of %s: %w", d.EventID, err)
	}
	return nil
}

// Deliveries returns the delivery attempts of missionID's events, oldest
// first (empty, not an error, when there are none).
func (s *Store) Deliveries(ctx context.Context, missionID string) ([]Delivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, at, client, event_id, mission_id, kind, attempt, outcome,
		coalesce(http_status, 0), coalesce(error, ''), duration_ms
		FROM wms_deliveries WHERE mission_id = $1 ORDER BY id`, missionID)
	if err != nil {
		return nil, fmt.Errorf("deliveries of %s: %w", missionID, err)
	}
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Delivery, error) {
		var d Delivery
		var ms int64
		err := row.Scan(&d.ID, &d.At, &d.Client, &d.EventID, &d.MissionID, &d.Kind, &d.Attempt, &d.Outcome, &d.HTTPStatus, &d.Error, &ms)
		d.At, d.Duration = d.At.UTC(), time.Duration(ms)*time.Millisecond
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("deliveries of %s: %w", missionID, err)
	}
	return ds, nil
}
