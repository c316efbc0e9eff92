// Sound and desktop notifications for new and escalated alerts: both opt-in
// (a dispatcher turns them on; browsers also require a gesture first).
import { create } from "zustand";

interface AlertingPrefs {
  sound: boolean;
  desktop: boolean;
}

export const useAlerting = create<AlertingPrefs>(() => ({ sound: false, desktop: false }));

let audio: AudioContext | null = null;

function beep(): void {
  audio ??= new AudioContext();
  const oscillator = audio.createOscillator();
  const gain = audio.createGain();
  oscillator.frequency.value = 880;
  gain.gain.setValueAtTime(0.2, audio.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
  oscillator.connect(gain).connect(audio.destination);
  oscillator.start();
  oscillator.stop(audio.currentTime + 0.6);
}

export async function enableDesktop(): Promise<boolean> {
  if (!("Notification" in window)) return false;
  const permission = await Notification.requestPermission();
  useAlerting.setState({ desktop: permission === "granted" });
  return permission === "granted";
}

export function alertSignal(title: string, body: string): void {
  const prefs = useAlerting.getState();
  if (prefs.sound) {
    try {
      beep();
    } catch {
      // No audio device: the live region and the queue still show it.
    }
  }
  if (prefs.desktop && "Notification" in window && Notification.permission === "granted") {
    new Notification(title, { body, tag: body });
  }
}
