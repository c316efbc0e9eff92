/** Zones: list, draw, edit, import (features/zones). */
export function Zones() {
  return (
    <main className="page zones">
      <h1>Zones</h1>
    </main>
  );
}
