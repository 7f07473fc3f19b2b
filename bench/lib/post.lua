-- wrk script: POST /api/v1/telemetry with one valid telemetry point (nominal values).
wrk.method = "POST"
wrk.path = "/api/v1/telemetry"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"voltage":28.1,"temperature":24.5,"gyro":0.02,"satellite_id":"bench-1"}'
