-- Bookings between customers and practitioners.
CREATE TABLE appointments (
  id TEXT PRIMARY KEY,
  customer_id TEXT NOT NULL REFERENCES users(id),
  practitioner_id TEXT NOT NULL REFERENCES practitioners(id),
  starts_at DATETIME NOT NULL,
  status TEXT CHECK(status IN ('requested', 'confirmed', 'cancelled')) NOT NULL DEFAULT 'requested'
);

CREATE INDEX idx_appointments_practitioner ON appointments(practitioner_id, starts_at);
