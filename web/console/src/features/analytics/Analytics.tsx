/** Response-time analytics (features/analytics). */
export function Analytics() {
  return (
    <main className="page analytics">
      <h1>Analytics</h1>
    </main>
  );
}
