"""The cloud side: MQTT consumer, InfluxDB storage, registry, live state, API and dashboard."""
