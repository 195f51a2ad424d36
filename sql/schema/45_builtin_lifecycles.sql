
---------------------------------------------------------------------------
-- The built-in lifecycles (doc/lifecycles.md), after orders.orders: the
-- transitions' stamp columns are checked against it.
---------------------------------------------------------------------------

-- Built-in lifecycles (doc/lifecycles.md).  pg_dump keeps only the rows
-- with builtin = false: the built-in ones come with the extension.
INSERT INTO orders.lifecycles (name, initial_status, description, builtin) VALUES
  ('cod',      'new',         'Cash-on-delivery order (seed 004)', true),
  ('campaign', 'draft',       'Lead-delivery campaign (seed 002)', true),
  ('review',   'configuring', 'Agency order with site review (seeds 000/001)', true),
  ('booking',  'pending',     'Service booking with a held time slot (seed 003)', true);

INSERT INTO orders.lifecycle_states (lifecycle, status, category, position, builtin, accepts_leads, holds_stock) VALUES
  ('cod', 'new',                  'open',      10, true, false, false),
  ('cod', 'confirmation_pending', 'open',      20, true, false, false),
  ('cod', 'confirmed',            'open',      30, true, false, true),
  ('cod', 'being_prepared',       'open',      40, true, false, true),
  ('cod', 'ready_for_pickup',     'open',      50, true, false, true),
  ('cod', 'out_for_delivery',     'open',      60, true, false, true),
  ('cod', 'delivered',            'fulfilled', 70, true, false, true),
  ('cod', 'returned',             'returned',  80, true, false, false),
  ('cod', 'cancelled',            'cancelled', 90, true, false, false),
  ('campaign', 'draft',     'open',      10, true, false, false),
  ('campaign', 'active',    'open',      20, true, true,  false),
  ('campaign', 'paused',    'open',      30, true, false, false),
  ('campaign', 'completed', 'fulfilled', 40, true, false, false),
  ('campaign', 'cancelled', 'cancelled', 50, true, false, false),
  ('review', 'configuring',     'open',      10, true, false, false),
  ('review', 'analyzing',       'open',      20, true, false, false),
  ('review', 'reviewing',       'open',      30, true, false, false),
  ('review', 'payment_pending', 'open',      40, true, false, false),
  ('review', 'in_progress',     'open',      50, true, false, false),
  ('review', 'completed',       'fulfilled', 60, true, false, false),
  ('review', 'cancelled',       'cancelled', 70, true, false, false),
  ('booking', 'pending',     'open',      10, true, false, false),
  ('booking', 'confirmed',   'open',      20, true, false, false),
  ('booking', 'in_progress', 'open',      30, true, false, false),
  ('booking', 'completed',   'fulfilled', 40, true, false, false),
  ('booking', 'no_show',     'cancelled', 50, true, false, false),
  ('booking', 'cancelled',   'cancelled', 60, true, false, false);

INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status, stamp_column, description, builtin) VALUES
  -- cod
  ('cod', 'new',                  'confirmation_pending', NULL,           'call the customer', true),
  ('cod', 'new',                  'confirmed',            'confirmed_at', 'confirmed at once', true),
  ('cod', 'new',                  'cancelled',            'cancelled_at', NULL, true),
  ('cod', 'confirmation_pending', 'confirmed',            'confirmed_at', NULL, true),
  ('cod', 'confirmation_pending', 'cancelled',            'cancelled_at', 'customer declined or unreachable', true),
  ('cod', 'confirmed',            'being_prepared',       NULL,           NULL, true),
  ('cod', 'confirmed',            'cancelled',            'cancelled_at', NULL, true),
  ('cod', 'being_prepared',       'ready_for_pickup',     NULL,           NULL, true),
  ('cod', 'being_prepared',       'cancelled',            'cancelled_at', NULL, true),
  ('cod', 'ready_for_pickup',     'out_for_delivery',     'shipped_at',   'agent picked it up', true),
  ('cod', 'ready_for_pickup',     'cancelled',            'cancelled_at', NULL, true),
  ('cod', 'out_for_delivery',     'delivered',            'delivered_at', NULL, true),
  ('cod', 'out_for_delivery',     'ready_for_pickup',     NULL,           'delivery attempt failed, back to the depot', true),
  ('cod', 'out_for_delivery',     'returned',             'returned_at',  'refused at the door', true),
  ('cod', 'delivered',            'returned',             'returned_at',  'returned after delivery', true),
  -- campaign
  ('campaign', 'draft',     'active',    'started_at',   NULL, true),
  ('campaign', 'draft',     'cancelled', 'cancelled_at', NULL, true),
  ('campaign', 'active',    'paused',    'paused_at',    NULL, true),
  ('campaign', 'active',    'completed', 'completed_at', NULL, true),
  ('campaign', 'active',    'cancelled', 'cancelled_at', NULL, true),
  ('campaign', 'paused',    'active',    NULL,           'resume', true),
  ('campaign', 'paused',    'completed', 'completed_at', 'close early', true),
  ('campaign', 'paused',    'cancelled', 'cancelled_at', NULL, true),
  ('campaign', 'completed', 'active',    NULL,           'reopen: more leads are owed', true),
  -- review
  ('review', 'configuring',     'analyzing',       NULL,           NULL, true),
  ('review', 'configuring',     'cancelled',       'cancelled_at', NULL, true),
  ('review', 'analyzing',       'reviewing',       NULL,           NULL, true),
  ('review', 'analyzing',       'configuring',     NULL,           'change the configuration', true),
  ('review', 'analyzing',       'cancelled',       'cancelled_at', NULL, true),
  ('review', 'reviewing',       'payment_pending', 'reviewed_at',  'client approved the sites', true),
  ('review', 'reviewing',       'analyzing',       NULL,           'client asks for more sites', true),
  ('review', 'reviewing',       'cancelled',       'cancelled_at', NULL, true),
  ('review', 'payment_pending', 'in_progress',     'paid_at',      'payment received', true),
  ('review', 'payment_pending', 'reviewing',       NULL,           'client changes the selection', true),
  ('review', 'payment_pending', 'cancelled',       'cancelled_at', NULL, true),
  ('review', 'in_progress',     'completed',       'completed_at', NULL, true),
  ('review', 'in_progress',     'cancelled',       'cancelled_at', 'cancelled after payment: refund', true),
  -- booking
  ('booking', 'pending',     'confirmed',   'confirmed_at', 'payment succeeded, slot booked', true),
  ('booking', 'pending',     'cancelled',   'cancelled_at', 'checkout abandoned or hold expired', true),
  ('booking', 'confirmed',   'in_progress', 'started_at',   'customer checked in', true),
  ('booking', 'confirmed',   'completed',   'completed_at', NULL, true),
  ('booking', 'confirmed',   'no_show',     'cancelled_at', NULL, true),
  ('booking', 'confirmed',   'cancelled',   'cancelled_at', NULL, true),
  ('booking', 'in_progress', 'completed',   'completed_at', NULL, true);

-- COD work by staff (seed 004), in API requests: the customer confirms or
-- cancels an order until it is being prepared; staff prepare it; the
-- assigned agent (or a manager) takes it out, delivers it or brings it back.
UPDATE orders.lifecycle_transitions t SET allowed_staff = w.who::text[]
  FROM (VALUES
    ('new',              'confirmation_pending', '{admin,manager,customer_rep}'),
    ('confirmed',        'being_prepared',       '{admin,manager,customer_rep,assigned_agent}'),
    ('being_prepared',   'ready_for_pickup',     '{admin,manager,customer_rep,assigned_agent}'),
    ('being_prepared',   'cancelled',            '{admin,manager,customer_rep}'),
    ('ready_for_pickup', 'out_for_delivery',     '{admin,manager,assigned_agent}'),
    ('ready_for_pickup', 'cancelled',            '{admin,manager,customer_rep}'),
    ('out_for_delivery', 'delivered',            '{admin,manager,assigned_agent}'),
    ('out_for_delivery', 'ready_for_pickup',     '{admin,manager,assigned_agent}'),
    ('out_for_delivery', 'returned',             '{admin,manager,assigned_agent}'),
    ('delivered',        'returned',             '{admin,manager,customer_rep}')
  ) w (from_status, to_status, who)
 WHERE t.lifecycle = 'cod' AND t.builtin AND t.from_status = w.from_status AND t.to_status = w.to_status;

-- Booking work by staff (0.27.0), in API requests: the customer holds and
-- books its places and cancels; staff check it in, complete it or mark a
-- no-show.  A customer completing its own future booking kept its places
-- for good (a completed order's bookings are not given back).  (0.32.0)
-- "Payment succeeded" (pending -> confirmed) is staff's too — in practice
-- the payment service's, outside the API roles: a customer confirmed its
-- own unpaid booking.
UPDATE orders.lifecycle_transitions t SET allowed_staff = '{admin,manager,customer_rep}'
 WHERE t.lifecycle = 'booking' AND t.builtin
   AND (t.from_status, t.to_status) IN (('pending', 'confirmed'),
                                        ('confirmed', 'in_progress'), ('confirmed', 'completed'),
                                        ('confirmed', 'no_show'), ('in_progress', 'completed'));

-- Agency and campaign work by staff (0.28.0), in API requests: the client
-- configures, approves the sites or asks for more, and cancels before
-- paying; the agency reports the analysis, takes the payment, completes
-- the work or cancels a paid order (a refund).  Staff start a campaign,
-- resume a paused one and reopen a completed one (more leads are owed);
-- its customer may pause or cancel it.  Before, a client took its own
-- agency order "payment received" (stamping paid_at) and "completed",
-- started an unpaid campaign, resumed one staff had paused and reopened a
-- completed one.
UPDATE orders.lifecycle_transitions t SET allowed_staff = w.who::text[]
  FROM (VALUES
    ('review',   'analyzing',       'reviewing',   '{admin,manager,customer_rep}'),
    ('review',   'payment_pending', 'in_progress', '{admin,manager}'),
    ('review',   'in_progress',     'completed',   '{admin,manager,customer_rep}'),
    ('review',   'in_progress',     'cancelled',   '{admin,manager}'),
    ('campaign', 'draft',           'active',      '{admin,manager,customer_rep}'),
    ('campaign', 'paused',          'active',      '{admin,manager,customer_rep}'),
    ('campaign', 'completed',       'active',      '{admin,manager,customer_rep}')
  ) w (lifecycle, from_status, to_status, who)
 WHERE t.lifecycle = w.lifecycle AND t.builtin AND t.from_status = w.from_status AND t.to_status = w.to_status;
