"""What a run tells the world: Prefect event names and resources, run reports (artifacts, progress), bucket
notifications read into changed keys, and the webhook relay that turns them into Prefect events."""
