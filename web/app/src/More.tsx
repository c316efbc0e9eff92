// The user app's screens beyond the panic button: the check-in timer, and the
// emergency contacts behind a disclosure button (kept apart from App.tsx).
import { useId, useState } from "react";

import { CheckIn } from "./checkin/CheckIn";
import { Contacts } from "./contacts/Contacts";

export function More({ onCheckIn }: { onCheckIn?: (running: boolean) => void }) {
  const [contacts, setContacts] = useState(false);
  const contactsId = useId();
  return (
    <div className="more">
      <CheckIn onRunning={onCheckIn} />
      <nav aria-label="More">
        <button type="button" className="disclosure" aria-expanded={contacts} aria-controls={contactsId} onClick={() => setContacts(!contacts)}>
          Emergency contacts
        </button>
      </nav>
      <div id={contactsId}>{contacts && <Contacts />}</div>
    </div>
  );
}
