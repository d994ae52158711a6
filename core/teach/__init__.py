"""Class mode: the classroom, students' own classes, roster, requests, slots, the job queue and its worker."""
