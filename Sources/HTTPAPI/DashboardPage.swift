/// The dashboard served at `/` (placeholder; filled in with the charts).
public enum DashboardPage {
    public static let html = "<!doctype html><title>AgentFlow</title>"
}
